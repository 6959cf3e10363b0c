/**
 * The sample's one permission, `'app.action'` like every permission name, and the group that
 * holds it. Whoever is in the group (or is a superuser) may see the staff page.
 */
export const VIEW_STAFF_PAGE = 'sample.view_staff_page';
export const STAFF_GROUP = 'staff';
